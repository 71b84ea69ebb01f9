// A small Java service for clogs' tests: it logs through java.util.logging (one line per record,
// as services configure it) and fails the way services fail: the same NullPointerException at one
// call site many times, a wrapped exception with its cause, a NullPointerException at another call
// site, and an uncaught exception that kills a worker thread (printed by the JVM itself).
import java.util.logging.Level;
import java.util.logging.Logger;

public class Shop {
    private static final Logger LOG = Logger.getLogger("shop.orders");

    static String lookup(String id) {
        return id.equals("none") ? null : "customer-" + id;
    }

    static int priceOf(String id) {
        String customer = lookup(id);
        return customer.length();   // call site A: NullPointerException when the customer is missing
    }

    static int discountOf(String id) {
        String customer = lookup(id);
        return customer.hashCode() % 10;   // call site B
    }

    static void charge(int amount) {
        try {
            throw new java.net.ConnectException("Connection refused to payments:8443");
        } catch (java.net.ConnectException e) {
            throw new IllegalStateException("payment backend unavailable", e);
        }
    }

    public static void main(String[] args) throws Exception {
        int repeats = args.length > 0 ? Integer.parseInt(args[0]) : 50;
        for (int i = 0; i < repeats; i++) {
            LOG.info("order " + (1000 + i) + " received from 10.0.0." + (i % 7));
            try {
                priceOf(i % 5 == 0 ? "none" : String.valueOf(i));
                LOG.info("order " + (1000 + i) + " priced");
            } catch (NullPointerException e) {
                LOG.log(Level.SEVERE, "pricing order " + (1000 + i) + " failed", e);
            }
        }
        try {
            charge(12);
        } catch (IllegalStateException e) {
            LOG.log(Level.SEVERE, "charging order 2000 failed", e);
        }
        try {
            discountOf("none");
        } catch (NullPointerException e) {
            LOG.log(Level.SEVERE, "discount for order 2001 failed", e);
        }
        LOG.info("order 2002 received from 10.0.0.1");
        Thread worker = new Thread(() -> { throw new UnsupportedOperationException("refunds are not implemented"); },
                                   "refund-worker");
        worker.start();
        worker.join();
        LOG.info("shutting down");
    }
}
