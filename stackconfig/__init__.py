"""Configuration and names: the stack's settings, the names its swarm objects carry and the outputs
it exports. Imports nothing of this project, so the program, the swarm library and the operations
tools can all depend on it."""
