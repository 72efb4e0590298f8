"""Adapters into voice-agent frameworks.

* :mod:`infp_sdk.integrations.pipecat` — ``InfpVideoService``, a Pipecat frame processor placed
  after the TTS (extra ``pipecat``).
* :mod:`infp_sdk.integrations.livekit` — ``InfpVideoGenerator`` for LiveKit Agents' avatar
  runner, and a self-hosted avatar worker (extra ``livekit``).

Both feed the user's voice to the agent as the partner, so the face listens while the user
speaks, and hand the agent's voice on delayed so that it matches the lips. Importing this
package imports neither framework.
"""
