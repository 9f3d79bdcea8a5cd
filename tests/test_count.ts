/**
 * Counts a `deno test --junit-path` report: each test once (a test with steps is one test; its
 * steps are not counted again), plus the names of the failed and skipped ones. A step that was
 * skipped is named and counted as skipped too (a test that skipped part of itself has not fully
 * run); a failed step is named under its test, which counts as the one failure.
 *
 * @module
 */

/** What a junit report says. */
export interface TestCount {
  /** Tests that ran and passed. */
  readonly passed: number;
  /** Tests that failed. */
  readonly failed: number;
  /** Tests (and steps) that did not run. */
  readonly skipped: number;
  /** `file: name` of each failed test, then of each failed step. */
  readonly failedNames: readonly string[];
  /** `file: name` of each skipped test or step. */
  readonly skippedNames: readonly string[];
}

interface JunitCase {
  readonly file: string;
  readonly name: string;
  readonly outcome: "passed" | "failed" | "skipped";
}

const ENTITIES: Readonly<Record<string, string>> = {
  "&lt;": "<",
  "&gt;": ">",
  "&quot;": '"',
  "&apos;": "'",
  "&amp;": "&",
};

function unescapeXml(text: string): string {
  return text.replace(/&(lt|gt|quot|apos|amp);/g, (m) => ENTITIES[m] ?? m);
}

function attribute(attributes: string, name: string): string {
  const m = new RegExp(`\\b${name}="([^"]*)"`).exec(attributes);
  return unescapeXml(m?.[1] ?? "");
}

/** Every `<testcase>` of a junit report, in order, with its suite (file) and outcome. */
function junitCases(xml: string): JunitCase[] {
  const out: JunitCase[] = [];
  const suites = /<testsuite\b([^>]*)>([\s\S]*?)<\/testsuite>/g;
  const cases = /<testcase\b([^>]*?)(\/>|>([\s\S]*?)<\/testcase>)/g;
  for (const suite of xml.matchAll(suites)) {
    const file = attribute(suite[1] ?? "", "name").replace(/^\.\//, "");
    for (const c of (suite[2] ?? "").matchAll(cases)) {
      const body = c[3] ?? "";
      const outcome = /<skipped\b/.test(body)
        ? "skipped"
        : /<failure\b|<error\b/.test(body)
        ? "failed"
        : "passed";
      out.push({ file, name: attribute(c[1] ?? "", "name"), outcome });
    }
  }
  return out;
}

/**
 * Whether a test name is selected by `deno test --filter PATTERN`: a substring, or a regular
 * expression when the pattern is written `/…/`.
 */
export function filterMatcher(pattern: string): (name: string) => boolean {
  if (pattern.length > 1 && pattern.startsWith("/") && pattern.endsWith("/")) {
    const re = new RegExp(pattern.slice(1, -1));
    return (name) => re.test(name);
  }
  return (name) => name.includes(pattern);
}

/**
 * Counts a junit report. Deno writes a step as a testcase named `test > step` after the tests
 * of its file; a case is a step when its name extends another case's name of the same file.
 * With `selected` (the test task's `--filter`), tests it rejects — which deno reports as skipped
 * — and their steps are not counted at all: they were not asked for.
 */
export function countJunit(xml: string, selected?: (name: string) => boolean): TestCount {
  const all = junitCases(xml);
  const testOf = (c: JunitCase, names: ReadonlySet<string>): string => {
    let at = c.name.indexOf(" > ");
    while (at > 0) {
      if (names.has(c.name.slice(0, at))) return c.name.slice(0, at);
      at = c.name.indexOf(" > ", at + 1);
    }
    return c.name;
  };
  const allNames = new Map<string, Set<string>>();
  for (const c of all) {
    const names = allNames.get(c.file) ?? new Set<string>();
    names.add(c.name);
    allNames.set(c.file, names);
  }
  const cases = selected === undefined
    ? all
    : all.filter((c) => selected(testOf(c, allNames.get(c.file) ?? new Set())));
  const namesByFile = new Map<string, Set<string>>();
  for (const c of cases) {
    const names = namesByFile.get(c.file) ?? new Set<string>();
    names.add(c.name);
    namesByFile.set(c.file, names);
  }
  const isStep = (c: JunitCase): boolean => {
    const names = namesByFile.get(c.file);
    let at = c.name.lastIndexOf(" > ");
    while (at > 0) {
      if (names?.has(c.name.slice(0, at))) return true;
      at = c.name.lastIndexOf(" > ", at - 1);
    }
    return false;
  };
  let passed = 0;
  let failed = 0;
  let skipped = 0;
  const failedTests: string[] = [];
  const failedSteps: string[] = [];
  const skippedNames: string[] = [];
  for (const c of cases) {
    const label = `${c.file}: ${c.name}`;
    if (isStep(c)) {
      if (c.outcome === "failed") failedSteps.push(label);
      if (c.outcome === "skipped") {
        skipped++;
        skippedNames.push(label);
      }
      continue;
    }
    if (c.outcome === "passed") passed++;
    else if (c.outcome === "failed") {
      failed++;
      failedTests.push(label);
    } else {
      skipped++;
      skippedNames.push(label);
    }
  }
  return {
    passed,
    failed,
    skipped,
    failedNames: [...failedTests, ...failedSteps],
    skippedNames,
  };
}

/** The test task's closing line: `N passed, N failed, N skipped`. */
export function summaryLine(count: Pick<TestCount, "passed" | "failed" | "skipped">): string {
  return `${count.passed} passed, ${count.failed} failed, ${count.skipped} skipped`;
}
