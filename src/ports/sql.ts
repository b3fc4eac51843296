// The SQL surface a port method runs on: a handler's transaction or the store itself. The same
// shape as the store's `SqlRunner`, restated here so ports import nothing but the canonical model.

export type PortSqlValue = string | number | bigint | null | Buffer;

export interface SqlRunner {
  readonly dialect: 'sqlite' | 'postgres';
  query<T extends Record<string, unknown> = Record<string, unknown>>(
    sql: string,
    params?: readonly PortSqlValue[],
  ): Promise<T[]>;
  execute(sql: string, params?: readonly PortSqlValue[]): Promise<{ changes: number }>;
}
