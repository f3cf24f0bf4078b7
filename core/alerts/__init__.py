"""Alerting: rules evaluated on the store, persisted episodes, an outbox of notifications sent by channels.

``model`` (the message data), ``rules`` (kinds, defaults, TOML entries), ``config`` (the configuration in force,
reloaded with the last good kept), ``signals`` (values per label set from the store), ``episode`` (one episode,
typed), ``transitions`` (the state machine: a pure function), ``evaluator`` (the persistence around it:
``episode_store``, ``notifier``, ``outbox``, ``inhibition``), ``enforcement`` (budget enforcement, a
``subscriber``), ``silences``; ``channels`` and ``delivery`` send the outbox
(``dispatch_report`` what a run did, ``redaction`` the masking of channel secrets, ``channel_health`` each
channel's state from its attempts). Nothing is imported here: the evaluator pulls in pandas through
:mod:`pulsegate.core.queries`.
"""
