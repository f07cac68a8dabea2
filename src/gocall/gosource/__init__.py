"""Function signatures and types read from Go source, for binaries without DWARF (issue 16):
:class:`~gocall.gosource.source.GoSource`."""
