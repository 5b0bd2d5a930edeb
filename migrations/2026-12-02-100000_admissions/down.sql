DROP TABLE admissions;
