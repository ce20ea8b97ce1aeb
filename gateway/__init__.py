"""raydo gateway: config, the Starlette app around the user app, the CLI."""
