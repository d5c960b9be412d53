"""Relational persistence shared by the services: engine set-up, metadata, migrations, the outbox."""
