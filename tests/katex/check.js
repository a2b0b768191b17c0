// Reads a JSON list of [latex, display] pairs on stdin; prints a JSON list of [index, message] for each span that
// KaTeX cannot parse (throwOnError, strict: no unknown commands, no control characters).
const katex = require("katex");
let input = "";
process.stdin.on("data", (d) => (input += d));
process.stdin.on("end", () => {
  const spans = JSON.parse(input);
  const bad = [];
  spans.forEach(([tex, display], i) => {
    try {
      katex.renderToString(tex, { throwOnError: true, displayMode: display, strict: "error" });
    } catch (e) {
      bad.push([i, String(e.message).split("\n")[0]]);
    }
  });
  process.stdout.write(JSON.stringify(bad));
});
