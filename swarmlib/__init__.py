"""The swarm library: a Docker SDK client with the project's ssh handling, facts read from a swarm,
the rule of which nodes a stack may claim, and the checks the program runs before it declares
anything. Used by the program's preflight and dynamic provider and by the operations tools."""
