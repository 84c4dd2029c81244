"""A run as the outside world sees it (pure Python): its event stream (``events``, the
typed ``payloads``, the ``telemetry`` emitter), the commands it takes on stdin
(``control``), and its folder (``folder``: creation and names; ``lock``: one engine per
folder)."""
