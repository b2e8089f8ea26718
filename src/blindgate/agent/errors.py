"""The agent's errors: one root, `AgentError`, under `BlindgateError`.

A request the agent refuses is answered with an AMS result (`blindgate.api.results.ApiError`);
these are the agent's own failures beneath that, such as a replayed seal context.
"""

from __future__ import annotations

from blindgate.errors import BlindgateError


class AgentError(BlindgateError):
    """The root of the agent's errors."""
