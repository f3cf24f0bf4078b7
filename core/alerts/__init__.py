"""Alerting: rules evaluated on the store, persisted episodes, an outbox of notifications sent by channels.

``model`` (the message data), ``rules`` (kinds, defaults, TOML entries), ``config`` (the configuration in force,
reloaded with the last good kept), ``signals`` (values per label set from the store), ``engine`` (the state
machine, grouping, inhibition, outbox writes), ``silences``; ``channels`` and ``delivery`` send the outbox.
Nothing is imported here: the engine pulls in pandas through :mod:`core.queries`.
"""
