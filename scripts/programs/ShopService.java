// A small Java service for the real-program benchmark (scripts/bench_programs.py): it serves
// "orders" at a steady rate, logs through java.util.logging, and carries out the fault the benchmark
// writes into its control file: an unreachable dependency, a full disk (writes to /dev/full), a
// NullPointerException at a new call site.  The errors are the JVM's own.
import java.io.FileOutputStream;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.Random;
import java.util.logging.Level;
import java.util.logging.Logger;

public class ShopService {
    private static final Logger LOG = Logger.getLogger("shop.orders");
    private static final Logger INVENTORY = Logger.getLogger("shop.inventory");
    private static final Map<String, String> CUSTOMERS = Map.of("c1", "Ada", "c2", "Linus");

    static void callPayments() throws IOException {
        try (Socket socket = new Socket()) {
            socket.connect(new InetSocketAddress("127.0.0.1", 1), 1000);
        }
    }

    static void writeReceipt(int order) throws IOException {
        try (FileOutputStream out = new FileOutputStream("/dev/full")) {
            out.write(("receipt " + order + "\n").repeat(1000).getBytes());
            out.flush();
        }
    }

    static int greet(String customer) {
        return CUSTOMERS.get(customer).length();   // null for an unknown customer
    }

    static void fault(String name, int order) {
        if (name.equals("dependency_down")) {
            for (int attempt = 1; attempt <= 3; attempt++) {
                try {
                    callPayments();
                } catch (IOException e) {
                    LOG.log(Level.SEVERE, "payment for order " + order + " failed (attempt " + attempt + ")", e);
                }
            }
        } else if (name.equals("disk_full")) {
            try {
                writeReceipt(order);
            } catch (IOException e) {
                LOG.log(Level.SEVERE, "writing the receipt of order " + order + " failed", e);
            }
        } else if (name.equals("bad_input")) {
            try {
                greet("c9");
            } catch (NullPointerException e) {
                LOG.log(Level.SEVERE, "order " + order + ": greeting failed", e);
            }
        }
    }

    public static void main(String[] args) throws Exception {
        Path control = Path.of(args[0]);
        double seconds = Double.parseDouble(args[1]), rate = Double.parseDouble(args[2]);
        Random rng = new Random(5);
        long end = System.nanoTime() + (long) (seconds * 1e9);
        String done = "";
        int order = 5000;
        LOG.info("shop service started");
        while (System.nanoTime() < end) {
            LOG.info("order " + order + " received from 10.1." + rng.nextInt(4) + "." + (1 + rng.nextInt(250)));
            if (rng.nextDouble() < 0.3) {
                INVENTORY.info("reserved " + (1 + rng.nextInt(5)) + " items of sku-" + (100 + rng.nextInt(900))
                               + " for order " + order);
            }
            LOG.info("order " + order + " paid in " + (20 + rng.nextInt(380)) + " ms");
            String asked = Files.exists(control) ? Files.readString(control).strip() : "";
            if (!asked.isEmpty() && !asked.equals(done)) {
                fault(asked.split(":")[0], order);
                done = asked;
            }
            order++;
            Thread.sleep((long) (1000 / rate));
        }
        LOG.info("shop service stopping");
    }
}
