// A task id as text (a URL segment, a tool argument given as a string): plain decimal digits, from
// 1 to the largest safe integer. The contract's integer would also read `0x43`, `+67` or `67e0`;
// only this form names a task, so each task has exactly one URL.
export const isTaskIdText = (value: string): boolean => /^[1-9]\d{0,15}$/.test(value) && Number(value) <= Number.MAX_SAFE_INTEGER;
