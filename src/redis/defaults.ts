/**
 * The Redis engine's defaults that `hotline serve`'s option table shows: here, apart from
 * the engine, so that reading them loads no `redis` package (an optional peer dependency).
 */

/**
 * How long a node's presence members and subscriber counts outlive its last heartbeat (ms):
 * a node that crashed is forgotten, and its members' leaves announced, within this plus
 * one heartbeat (a third of it).
 */
export const DEFAULT_NODE_TTL = 15_000;
