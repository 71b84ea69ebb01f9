/*
 * Starts one real Elasticsearch node (the server jar and the transport-netty4 plugin,
 * both from Maven Central) as a plain Java process, for clogs' local services and tests.
 *
 * It lives in package org.elasticsearch.plugins because the node is built the way the
 * distribution's plugin loader would build it, but from classes already on the classpath:
 * PluginsService.LoadedPlugin is package-private there. It is compiled by scripts/services
 * (javac, one file) into .services/classes and run with the jars of .services/lib/elasticsearch.
 *
 * Usage: java -cp CLASSES:LIB/* org.elasticsearch.plugins.ClogsElasticsearch HOME HTTP_PORT TRANSPORT_PORT
 * The 8.x distribution serves GET / from a module that is not published on Maven Central,
 * so a small plugin below answers GET / and HEAD / with the same document.
 */
package org.elasticsearch.plugins;

import org.elasticsearch.Build;
import org.elasticsearch.Version;
import org.elasticsearch.client.internal.node.NodeClient;
import org.elasticsearch.cluster.metadata.IndexNameExpressionResolver;
import org.elasticsearch.cluster.node.DiscoveryNodes;
import org.elasticsearch.common.logging.LogConfigurator;
import org.elasticsearch.common.settings.ClusterSettings;
import org.elasticsearch.common.settings.IndexScopedSettings;
import org.elasticsearch.common.settings.Settings;
import org.elasticsearch.common.settings.SettingsFilter;
import org.elasticsearch.env.Environment;
import org.elasticsearch.jdk.ModuleQualifiedExportsService;
import org.elasticsearch.node.InternalSettingsPreparer;
import org.elasticsearch.node.Node;
import org.elasticsearch.rest.RestChannel;
import org.elasticsearch.rest.RestController;
import org.elasticsearch.rest.RestHandler;
import org.elasticsearch.rest.RestRequest;
import org.elasticsearch.rest.RestResponse;
import org.elasticsearch.rest.RestStatus;
import org.elasticsearch.transport.netty4.Netty4Plugin;
import org.elasticsearch.xcontent.XContentBuilder;
import org.elasticsearch.xcontent.json.JsonXContent;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;

public class ClogsElasticsearch {

    /** Answers GET / and HEAD / like the distribution's rest-root module does. */
    public static class RootPlugin extends Plugin implements ActionPlugin {
        private final Settings settings;

        public RootPlugin(Settings settings) {
            this.settings = settings;
        }

        @Override
        public List<RestHandler> getRestHandlers(Settings s, RestController controller, ClusterSettings clusterSettings,
                IndexScopedSettings indexScopedSettings, SettingsFilter settingsFilter,
                IndexNameExpressionResolver resolver, Supplier<DiscoveryNodes> nodes) {
            RestHandler root = new RestHandler() {
                @Override
                public List<Route> routes() {
                    return List.of(new Route(RestRequest.Method.GET, "/"), new Route(RestRequest.Method.HEAD, "/"));
                }

                @Override
                public void handleRequest(RestRequest request, RestChannel channel, NodeClient client) throws Exception {
                    XContentBuilder b = JsonXContent.contentBuilder();
                    b.startObject();
                    b.field("name", Node.NODE_NAME_SETTING.get(settings));
                    b.field("cluster_name", settings.get("cluster.name"));
                    b.field("cluster_uuid", "_na_");
                    b.startObject("version");
                    b.field("number", Version.CURRENT.toString());
                    b.field("build_flavor", "default");
                    b.field("build_type", "maven");
                    b.field("build_hash", Build.current().hash());
                    b.field("build_date", Build.current().date());
                    b.field("build_snapshot", false);
                    b.field("lucene_version", org.apache.lucene.util.Version.LATEST.toString());
                    b.field("minimum_wire_compatibility_version", "7.17.0");
                    b.field("minimum_index_compatibility_version", "7.0.0");
                    b.endObject();
                    b.field("tagline", "You Know, for Search");
                    b.endObject();
                    channel.sendResponse(new RestResponse(RestStatus.OK, b));
                }
            };
            return List.of(root);
        }
    }

    /** A PluginsService whose plugins are classes on the classpath instead of folders. */
    static class ClasspathPluginsService extends PluginsService {
        private final List<LoadedPlugin> loaded;

        ClasspathPluginsService(Settings settings, Environment env, List<Class<? extends Plugin>> classes) {
            super(settings, env.configFile(), env.modulesFile(), env.pluginsFile());
            List<LoadedPlugin> out = new ArrayList<>();
            for (Class<? extends Plugin> c : classes) {
                Plugin plugin = loadPlugin(c, settings, env.configFile());
                PluginDescriptor d = new PluginDescriptor(c.getName(), "classpath plugin", "NA", Version.CURRENT,
                        "17", c.getName(), null, Collections.emptyList(), false, false, false, false);
                out.add(new LoadedPlugin(d, plugin));
            }
            this.loaded = List.copyOf(out);
        }

        /** The server runs on the classpath (unnamed module): it has no module exports to add. */
        @Override
        protected void addServerExportsService(Map<String, List<ModuleQualifiedExportsService>> qualifiedExports) {}

        @Override
        protected List<LoadedPlugin> plugins() {
            return loaded;
        }
    }

    static class ClogsNode extends Node {
        ClogsNode(Environment env, List<Class<? extends Plugin>> classes) {
            super(env, s -> new ClasspathPluginsService(s, env, classes), true);
        }
    }

    public static void main(String[] args) throws Exception {
        Path home = Path.of(args[0]).toAbsolutePath();
        String httpPort = args.length > 1 ? args[1] : "9200";
        String transportPort = args.length > 2 ? args[2] : "9300";
        for (String dir : List.of("config", "data", "logs", "plugins", "modules", "tmp")) {
            Files.createDirectories(home.resolve(dir));
        }
        Settings.Builder builder = Settings.builder()
                .put("path.home", home.toString())
                .put("path.data", home.resolve("data").toString())
                .put("path.logs", home.resolve("logs").toString())
                .put("cluster.name", "clogs-local")
                .put("node.name", "clogs-es")
                .put("discovery.type", "single-node")
                .put("network.host", "127.0.0.1")
                .put("http.port", httpPort)
                .put("transport.port", transportPort)
                .put("action.destructive_requires_name", false)
                .put("cluster.routing.allocation.disk.threshold_enabled", false);
        for (int i = 3; i < args.length; i++) {  // extra node settings, key=value (CLOGS_ES_SETTINGS)
            int eq = args[i].indexOf('=');
            builder.put(args[i].substring(0, eq), args[i].substring(eq + 1));
        }
        Settings settings = builder.build();
        LogConfigurator.registerErrorListener();
        LogConfigurator.setNodeName("clogs-es");
        LogConfigurator.configureESLogging();
        LogConfigurator.configureWithoutConfig(settings);
        Environment env = InternalSettingsPreparer.prepareEnvironment(settings, Map.of(), home.resolve("config"), () -> "clogs-es");
        Node node = new ClogsNode(env, List.of(Netty4Plugin.class, RootPlugin.class));
        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            try {
                node.close();
                node.awaitClose(30, TimeUnit.SECONDS);
            } catch (Exception e) {
                e.printStackTrace();
            } finally {
                stopped.countDown();
            }
        }, "clogs-es-shutdown"));
        node.start();
        System.out.println("clogs-es: started, http on 127.0.0.1:" + httpPort);
        stopped.await();
    }
}
