"""Gateway apps and their tokens: what an app may do (:mod:`~pulsegate.core.apps.model`), how tokens are made and
checked (:mod:`~pulsegate.core.apps.tokens`) and how both are kept in the store (:mod:`~pulsegate.core.apps.store`)."""
