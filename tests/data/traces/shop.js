// A small Node.js service for clogs' tests: it logs with console, reports a caught error with its
// stack (console.error(err)), then an uncaught TypeError ends the process (Node prints the source
// line, a caret, the stack and its version).
function priceOf(order) {
  const customer = order % 5 === 0 ? undefined : { name: `customer-${order}` };
  return customer.name.length;
}

for (let i = 0; i < 6; i++) {
  console.log(`${new Date(Date.UTC(2026, 11, 7, 10, 0, i)).toISOString()} INFO order ${1000 + i} received`);
  try {
    priceOf(i + 1);
  } catch (err) {
    console.error(`${new Date(Date.UTC(2026, 11, 7, 10, 0, i)).toISOString()} ERROR pricing order ${1000 + i} failed`);
    console.error(err);
  }
}
priceOf(0);
