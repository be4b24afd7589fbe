"""What every app shares and nothing of the domain: leases, numbers from clients, the service error type."""
