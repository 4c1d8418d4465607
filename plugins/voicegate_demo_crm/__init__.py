"""A demo CRM backend that reads customer profiles from ``config/customers.yaml``."""
