"""simlab-example-plugin: a third-party simlab plugin (see docs/plugins.md in simlab).

It adds two registry entries, found through entry points declared in this package's
pyproject.toml:

- system ``mulaw`` (group ``simlab.systems``): ITU-T G.711 µ-law, 64 kbit/s, 20 ms frames
  (`simlab_example_plugin.mulaw`);
- loss model ``outage`` (group ``simlab.channels``): periodic outages in time
  (`simlab_example_plugin.outage`).

Importing this package imports nothing heavy; each entry's factory imports what it builds.
"""

__version__ = "0.1.0"
