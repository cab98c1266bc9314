"""Values staff type and read: money and code parsing, formatting, code masking, sale input rules."""
