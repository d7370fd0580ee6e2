class CommandError(ValueError):
    """A command the client must fix; `detail` is sent verbatim as the 400 body's `detail`."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail
