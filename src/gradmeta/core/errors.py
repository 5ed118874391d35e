"""The one exception type that user-facing code raises for bad input or an unusable environment."""


class GradmetaError(Exception):
    """A problem the user can fix; its message is one line naming the file or parameter at fault."""
