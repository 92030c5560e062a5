/** `hotline/redis`: the Redis engine, for channels shared by every node that uses one Redis. */
export {
  DEFAULT_COMMAND_TIMEOUT,
  DEFAULT_CONNECT_TIMEOUT,
  DEFAULT_MAX_QUEUED_COMMANDS,
  DEFAULT_NODE_TTL,
  RedisEngine,
  type RedisEngineOptions,
} from './engine.js';
