"""The optional Ray engine (`planrt run --engine ray`): engine, actors, cluster labels, `planrt node`
and its cost measurement. Needs the extra `planc[ray]`."""
