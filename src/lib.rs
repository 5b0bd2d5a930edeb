pub mod importer;
