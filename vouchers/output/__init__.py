"""What the portal produces besides pages: CSV files, tables, QR codes and stock charts."""
