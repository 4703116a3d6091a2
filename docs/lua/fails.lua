-- fails.lua - a main chunk that raises: the traceback on stderr, exit status 1.
local config = {}
print(config.server.port)
