// Instants leave the database as RFC 3339 UTC text with microseconds, the contract's shape: exact
// (a cursor built from one loses nothing) and never re-formatted in JavaScript.
export const utc = (column: string) => `to_char(${column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`;
