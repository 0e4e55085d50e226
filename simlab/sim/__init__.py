"""SimPy elements of one call: source/sender, links, receiver, feedback, monitor.

Elements are plain classes with ``put(item)`` and an ``out`` they forward to, wired by
assignment (the style of ns.py and SimPy's examples). Work whose timing is known when it
starts (a FIFO device or link with known service times) is computed, not waited for: an element
schedules the hand-over at the time it happens, so a packet costs as few events as it needs.
"""
