"""The engine: courses, the compiled machine, the registry of plugins, course files.

It depends only on :mod:`iptflow.protocol` (the data a protocol is made of) and
:mod:`iptflow.errors`. The base events, guards and deviation checks are not part of it:
they are the core plugin, :mod:`iptflow.builtins`, loaded through the same entry-point
group as every other plugin.
"""
