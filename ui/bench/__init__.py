"""The Bench page's parts: the feed over the Qt-free Bench service and its plots."""
