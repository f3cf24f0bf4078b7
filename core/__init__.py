"""The call wrapper's rooms, installed as ``pulsegate.core``; an application imports from ``pulsegate`` itself.

docs/house.md maps the rooms and the way the arrows between them point.
"""
