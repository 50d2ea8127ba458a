// Types for the default config files that src/sys/config.ts imports as text
// (`with { type: "text" }`), so the compiled binary carries them and works with no files at all.
declare module "*.sh" {
  const text: string;
  export default text;
}
declare module "*.conf" {
  const text: string;
  export default text;
}
