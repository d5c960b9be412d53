"""API gateway: authentication (users, JWT, API keys), problem-details errors, the WebSocket stream."""
