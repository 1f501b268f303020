"""One module per `planrt` verb (run, resume, inspect), each with add_parser() and run()."""
