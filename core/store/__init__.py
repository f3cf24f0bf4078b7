"""The metrics store: schema, engines and migrations."""

from pulsegate.core.store.engine import check_connection, create_store_engine, describe_url
from pulsegate.core.store.status import StoreStatus, store_status
from pulsegate.core.store.tables import metadata

__all__ = ["StoreStatus", "check_connection", "create_store_engine", "describe_url", "metadata", "store_status"]
