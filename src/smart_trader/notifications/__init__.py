"""Notifications: in-app (WebSocket, API), e-mail through SMTP and signed outgoing webhooks, from domain events."""
