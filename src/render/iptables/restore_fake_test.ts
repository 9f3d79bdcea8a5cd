import assert from "node:assert/strict";
import { IptablesFake, RestoreError, splitWords, undeclaredJumps } from "./restore_fake.ts";

Deno.test("fake applies chains and rules with noflush semantics", () => {
  const fake = new IptablesFake();
  fake.restore("*filter\n-A INPUT -s 198.18.0.1 -j ACCEPT\nCOMMIT\n", { noflush: true });
  fake.restore(
    "*filter\n:KUBE-A - [0:0]\n-A KUBE-A -j DROP\n-I INPUT 1 -j KUBE-A\nCOMMIT\n",
    { noflush: true },
  );
  assert.deepEqual(fake.chains("filter").get("INPUT"), ["-j KUBE-A", "-s 198.18.0.1 -j ACCEPT"]);
  // Without --noflush the table is emptied first.
  fake.restore("*filter\nCOMMIT\n");
  assert.deepEqual(fake.chains("filter").get("INPUT"), []);
  assert.equal(fake.chains("filter").has("KUBE-A"), false);
});

Deno.test("fake refuses jumps to missing chains, missing deletes and busy chain deletes", () => {
  const fake = new IptablesFake();
  assert.throws(() => fake.restore("*nat\n-A OUTPUT -j KUBE-NOPE\nCOMMIT\n"), RestoreError);
  fake.restore("*nat\n:KUBE-A - [0:0]\n-A OUTPUT -j KUBE-A\nCOMMIT\n", { noflush: true });
  assert.throws(
    () => fake.restore("*nat\n-D OUTPUT -j KUBE-B\nCOMMIT\n", { noflush: true }),
    /no matching rule/,
  );
  assert.throws(
    () => fake.restore("*nat\n-X KUBE-A\nCOMMIT\n", { noflush: true }),
    /still used/,
  );
});

Deno.test("fake commits per table: a failing nat leaves the committed filter and the old nat", () => {
  const fake = new IptablesFake();
  fake.restore("*nat\n:KUBE-A - [0:0]\nCOMMIT\n", { noflush: true });
  assert.throws(() =>
    fake.restore(
      "*filter\n:KUBE-F - [0:0]\nCOMMIT\n*nat\n:KUBE-B - [0:0]\n-A KUBE-B -j KUBE-C\nCOMMIT\n",
      { noflush: true },
    )
  );
  assert.ok(fake.chains("filter").has("KUBE-F"));
  assert.ok(fake.chains("nat").has("KUBE-A"));
  assert.ok(!fake.chains("nat").has("KUBE-B"));
});

Deno.test("fake save text round-trips through restore", () => {
  const fake = new IptablesFake();
  fake.restore(
    '*nat\n:KUBE-A - [0:0]\n-A KUBE-A -m comment --comment "a b" -j RETURN\nCOMMIT\n',
    { noflush: true },
  );
  const saved = fake.save("nat");
  assert.match(saved, /-A KUBE-A -m comment --comment "a b" -j RETURN/);
  const again = new IptablesFake();
  again.restore(saved);
  assert.deepEqual(again.chains("nat"), fake.chains("nat"));
});

Deno.test("splitWords honours quotes", () => {
  assert.deepEqual(splitWords('-A X --comment "a b" -j Y'), [
    "-A",
    "X",
    "--comment",
    "a b",
    "-j",
    "Y",
  ]);
});

Deno.test("undeclaredJumps finds jumps and appends to chains the text never declared", () => {
  assert.deepEqual(undeclaredJumps("*nat\n:KUBE-A - [0:0]\n-A KUBE-A -j RETURN\nCOMMIT\n"), []);
  assert.equal(undeclaredJumps("*nat\n:KUBE-A - [0:0]\n-A KUBE-A -j KUBE-B\nCOMMIT\n").length, 1);
  assert.equal(undeclaredJumps("*nat\n-A KUBE-A -j RETURN\nCOMMIT\n").length, 1);
  assert.equal(
    undeclaredJumps("*nat\n:KUBE-A - [0:0]\n-A OUTPUT -j KUBE-A\n-X KUBE-A\nCOMMIT\n").length,
    1,
  );
});
