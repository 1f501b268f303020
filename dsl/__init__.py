"""The .plan language: grammar, AST, parser, checks, diagnostics and formatter."""
