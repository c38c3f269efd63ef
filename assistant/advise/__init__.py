"""Domain advisors: which case type fits an affair, and which notification type applies."""
