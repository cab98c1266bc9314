"""Forms, one module per area. They parse and validate input; services decide what happens."""
