DROP TABLE admin_credentials;
DROP TABLE admin_sessions;
