"""Pure core: schema, world columns, snapshot history, delta codec, protocol, rate limits.

Nothing in here imports trio, opens a socket or reads a clock; callers pass time in.
"""
