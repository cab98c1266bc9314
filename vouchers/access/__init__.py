"""Who may do what: roles, campaign scoping, and the navigation built from them."""
