"""`planrt resume` (its implementation lives beside `planrt run`)."""

from planc.runtime.commands.run import add_resume_parser as add_parser
from planc.runtime.commands.run import resume as run

__all__ = ["add_parser", "run"]
