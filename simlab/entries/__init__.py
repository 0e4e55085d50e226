"""simlab's own registry entries (see `simlab.registry`): each module declares the spec models a
scenario writes and the entries that build them, registered through entry points in setup.cfg
exactly as a third-party plugin's would be. Nothing heavy is imported here: factories import
their implementation (libopus, FFmpeg, torch) when called."""
