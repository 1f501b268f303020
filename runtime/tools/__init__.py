"""Tool calls: exec programs and python workers in their own process groups, failure policies
(retry, backoff, timeout) and circuit breakers."""
