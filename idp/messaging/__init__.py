"""Messages to people: SMS through an outbox file (development, tests) or an HTTP gateway."""
