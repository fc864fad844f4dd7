"""A retrieval test set written for synthq: short documents on many topics, near-topic
distractors, and for each target document a query in the form the attribute stage sends (the
seed's intent, then its keywords), written for that document without copying its sentences.

recall@1 = share of queries whose top document is their target. Used by
tests/attribute/test_retrieval.py and bench/retrieval_recall.py.
"""

# (key, title, text): targets first, then distractors (no query points at those)
DOCUMENTS = [
    ("sourdough", "Keeping a sourdough starter alive",
     "A starter is a culture of wild yeast and lactic acid bacteria. Feed it equal weights of flour and water every day, "
     "discard half before feeding, and keep it at room temperature until it doubles within eight hours."),
    ("rebase", "Git rebase compared with merge",
     "Rebasing replays your commits on top of another branch and gives a linear history, while a merge commit records "
     "that two lines of work joined. Never rebase commits that others have already pulled."),
    ("budget", "The 50/30/20 budgeting rule",
     "Split take-home pay into needs (50 percent), wants (30 percent) and savings or debt repayment (20 percent). "
     "Rent, groceries and insurance are needs; restaurants and streaming are wants."),
    ("exposure", "The exposure triangle in photography",
     "Aperture, shutter speed and ISO together set how bright a photo is. A wide aperture blurs the background, a fast "
     "shutter freezes motion, and a high ISO brightens the image at the cost of noise."),
    ("regression", "Simple linear regression",
     "Linear regression fits a straight line y = a + bx that minimises the sum of squared residuals. The slope b tells how "
     "much y changes per unit of x, and R squared says how much variance the line explains."),
    ("tcp", "How the TCP three-way handshake works",
     "A client sends SYN, the server answers SYN-ACK, and the client replies ACK; only then does data flow. Sequence numbers "
     "exchanged in the handshake let both sides detect lost and reordered segments."),
    ("photosynthesis", "Photosynthesis in plant leaves",
     "Chloroplasts capture light energy to split water, release oxygen and make ATP and NADPH. The Calvin cycle then uses "
     "that energy to fix carbon dioxide into sugars."),
    ("compost", "Starting a backyard compost heap",
     "Mix green material such as vegetable scraps and grass clippings with brown material such as dry leaves and cardboard, "
     "keep the heap as damp as a wrung-out sponge and turn it every couple of weeks so it stays aerobic."),
    ("marathon", "Training plan for a first marathon",
     "Most beginner plans run sixteen to twenty weeks and build the weekly long run gradually to about 32 kilometres, then "
     "taper for the last three weeks. Easy pace should allow a conversation."),
    ("interest", "Compound interest explained",
     "With compounding, interest is earned on earlier interest as well as on the principal. At 7 percent a year, money "
     "roughly doubles in ten years; the rule of 72 estimates doubling time as 72 divided by the rate."),
    ("vaccines", "How mRNA vaccines train the immune system",
     "An mRNA vaccine delivers instructions, wrapped in lipid nanoparticles, for cells to build a harmless piece of a "
     "virus's spike protein, which the immune system then learns to recognise. The mRNA is broken down within days."),
    ("sql_window", "SQL window functions",
     "Window functions such as ROW_NUMBER, RANK and running SUM compute a value for each row over a partition of related "
     "rows, defined with OVER (PARTITION BY ... ORDER BY ...), without collapsing rows like GROUP BY does."),
    ("rust", "Ownership and borrowing in Rust",
     "Every value in Rust has one owner, and the value is dropped when its owner goes out of scope. References borrow a "
     "value: any number of shared borrows, or exactly one mutable borrow, checked at compile time."),
    ("espresso", "Dialing in espresso",
     "Aim for about 18 grams of coffee in and 36 grams out in 25 to 30 seconds. A sour, fast shot needs a finer grind; a "
     "bitter, slow one needs a coarser grind."),
    ("tides", "Why the sea has tides",
     "The Moon's gravity pulls the ocean into two bulges, one facing it and one on the far side, so most coasts see two "
     "high tides a day. When Sun and Moon line up, spring tides are the largest."),
    ("kubernetes", "Kubernetes pods and deployments",
     "A pod is the smallest deployable unit and holds one or more containers sharing a network namespace. A Deployment "
     "keeps a chosen number of pod replicas running and rolls out new versions gradually."),
    ("sleep", "Sleep hygiene for better rest",
     "Keep the same wake-up time every day, avoid caffeine after early afternoon, keep the bedroom cool and dark, and put "
     "screens away an hour before bed."),
    ("roman", "The fall of the Western Roman Empire",
     "Historians point to overstretched borders, economic trouble, political instability and migrations of Germanic "
     "peoples. The deposition of Romulus Augustulus by Odoacer in 476 is the conventional end date."),
    ("guitar", "Learning barre chords on guitar",
     "In a barre chord the index finger presses every string across one fret. Press with the bony side of the finger, "
     "keep the thumb low behind the neck, and practise the F major shape at the first fret."),
    ("resume", "Writing a resume that gets interviews",
     "Lead each role with achievements and numbers rather than duties, tailor keywords to the job posting so applicant "
     "tracking systems match them, and keep it to one page early in a career."),
    ("blackhole", "What an event horizon is",
     "The event horizon is the boundary around a black hole beyond which nothing, not even light, can escape. Its radius, "
     "the Schwarzschild radius, grows in proportion to the black hole's mass."),
    ("knitting", "Casting on for knitting beginners",
     "The long-tail cast-on makes a stretchy, neat edge: leave a tail about three times the width of the piece, make a slip "
     "knot, and loop yarn from thumb and index finger onto the needle."),
    ("regex", "Regular expression basics",
     "A regular expression describes a text pattern: \\d matches a digit, + means one or more, ^ and $ anchor the start and "
     "end, and parentheses capture groups you can reuse in replacements."),
    ("inflation", "What causes inflation",
     "Prices rise when demand outruns what the economy can produce, when costs such as energy jump, or when expectations of "
     "rising prices feed wage demands. Central banks raise interest rates to cool it."),
    ("chess", "Chess opening principles",
     "Control the centre with pawns and pieces, develop knights before bishops, castle early to protect the king, and avoid "
     "moving the same piece twice in the opening."),
    ("houseplants", "Caring for a monstera",
     "Monstera deliciosa likes bright indirect light and watering when the top few centimetres of soil are dry. Yellow "
     "leaves usually mean overwatering; a moss pole helps it climb and grow larger split leaves."),
    ("docker", "Writing a small Dockerfile",
     "Start from a slim base image, copy dependency files and install them before copying the source so the layer cache "
     "survives code changes, and use a multi-stage build to leave compilers out of the final image."),
    ("vitamin_d", "Vitamin D and sunlight",
     "Skin makes vitamin D from ultraviolet B light. In winter at high latitudes the sun is too low for that, so many "
     "people rely on food such as oily fish or on supplements."),
    ("negotiation", "Negotiating a salary offer",
     "Research the market range first, let the employer name a number, anchor your counter near the top of the range with "
     "reasons, and consider benefits, equity and start date as parts of the deal."),
    ("bees", "Why bees matter for crops",
     "Honeybees and wild bees carry pollen between flowers, which many fruit, nut and vegetable crops need to set seed. "
     "Almonds depend almost entirely on bee pollination."),
    ("pythongen", "Python generators and lazy evaluation",
     "A function containing yield returns a generator, which produces values one at a time and only when asked, so it can "
     "walk a huge file without loading it into memory. Generator expressions use parentheses."),
    ("earthquake", "Measuring earthquakes",
     "Seismometers record ground motion; the moment magnitude scale measures the energy released, and each whole step is "
     "about 32 times more energy. Intensity scales instead describe the shaking people feel."),
    # distractors: near the targets' topics, the target of no query
    ("d_bread", "Baking a yeasted sandwich loaf",
     "Commercial instant yeast, bread flour, milk and butter give a soft loaf. Knead until the dough passes the windowpane "
     "test, proof until doubled and bake at 190 degrees for about 35 minutes."),
    ("d_git", "Git branches for beginners",
     "A branch is a movable pointer to a commit. Create one with git switch -c, commit on it, and push it to share your work "
     "with a pull request."),
    ("d_tax", "Filing income tax returns",
     "Gather income statements and receipts for deductions, choose between the standard deduction and itemising, and file "
     "before the deadline to avoid penalties."),
    ("d_camera", "Choosing a first camera lens",
     "A 50 mm prime is cheap, sharp and light; a zoom covers more framing choices. Lens mounts differ between brands, so "
     "check compatibility first."),
    ("d_stats", "Mean, median and mode",
     "The mean adds values and divides by their count, the median is the middle value, and the mode is the most frequent. "
     "The median resists outliers better than the mean."),
    ("d_udp", "UDP datagrams",
     "UDP sends independent datagrams without a connection, acknowledgements or ordering, which suits streaming and games "
     "that prefer fresh data over complete data."),
    ("d_garden", "Planning a vegetable garden",
     "Put beds where they get six hours of sun, rotate crop families each year, and plant tall crops on the north side so "
     "they do not shade the rest."),
    ("d_running", "Choosing running shoes",
     "Fit matters more than brand: leave a thumb's width at the toe, try shoes late in the day when feet are larger, and "
     "replace them every 500 to 800 kilometres."),
    ("d_tea", "Brewing green tea",
     "Use water around 80 degrees rather than boiling, steep for two to three minutes, and re-steep good leaves several "
     "times."),
    ("d_moon", "Phases of the Moon",
     "The Moon shows phases because we see different parts of its sunlit half as it orbits Earth every 29.5 days: new, "
     "waxing crescent, first quarter, full and back."),
    ("d_java", "Java garbage collection",
     "The JVM reclaims objects that are no longer reachable. Generational collectors assume most objects die young and "
     "collect the young generation often."),
    ("d_history", "The Byzantine Empire",
     "The eastern half of the Roman Empire, ruled from Constantinople, lasted until the Ottoman conquest in 1453 and kept "
     "Roman law and Greek learning alive."),
    # hard negatives: one close neighbour for many targets (same field, other subject)
    ("h_kombucha", "Feeding a kombucha culture",
     "A kombucha SCOBY is a culture of yeast and bacteria fed with sweetened tea. Keep some finished brew as starter liquid, "
     "ferment at room temperature for a week or two, and feed the culture fresh sweet tea for each batch."),
    ("h_cherrypick", "Git cherry-pick",
     "Cherry-picking copies a single commit from one branch onto another as a new commit. It suits hotfixes that must land "
     "on a release branch without merging everything else."),
    ("h_zerobudget", "Zero-based budgeting",
     "Give every unit of income a job until income minus planned spending and savings is zero. Each month starts from "
     "scratch instead of from last month's categories."),
    ("h_dof", "Depth of field and focus",
     "Depth of field is the range of distances that look sharp. It shrinks with a wider aperture, a longer focal length and "
     "a closer subject, which is why portraits often have soft backgrounds."),
    ("h_logistic", "Logistic regression for classification",
     "Logistic regression models the probability of a yes-or-no outcome with the sigmoid of a linear combination of inputs, "
     "fitted by maximum likelihood rather than least squares."),
    ("h_tls", "The TLS handshake",
     "Before encrypted traffic flows, client and server agree on a cipher suite, the server proves its identity with a "
     "certificate, and both derive session keys."),
    ("h_respiration", "Cellular respiration",
     "Cells break glucose down with oxygen in the mitochondria, releasing carbon dioxide and water and storing the energy as "
     "ATP, roughly the reverse of the reaction plants use to make sugar."),
    ("h_worms", "Composting with worms",
     "Red wiggler worms in a bin eat kitchen scraps and leave castings, a rich fertiliser. Keep the bedding damp, avoid meat "
     "and citrus, and harvest the castings every few months."),
    ("h_halfmarathon", "Half marathon training",
     "A 21-kilometre race needs about ten to twelve weeks of training for someone who already runs regularly, with one long "
     "run a week growing to around 18 kilometres."),
    ("h_simpleinterest", "Simple interest",
     "Simple interest is paid only on the original principal: principal times rate times years. Car loans and some bonds "
     "use it, and it grows linearly rather than exponentially."),
    ("h_inactivated", "Inactivated and live vaccines",
     "Older vaccines use a killed or weakened virus, or a purified protein, to show the immune system what to attack; some "
     "need booster doses to keep immunity up."),
    ("h_groupby", "SQL GROUP BY and aggregates",
     "GROUP BY collapses rows that share values into one row per group, and aggregates such as COUNT, SUM and AVG summarise "
     "each group; HAVING filters the groups."),
    ("h_cpp", "Smart pointers in C++",
     "unique_ptr owns an object alone and deletes it when it goes out of scope; shared_ptr counts references so several "
     "owners can share one object. Both replace manual new and delete."),
    ("h_pourover", "Brewing pour-over coffee",
     "Use a medium-fine grind, about 60 grams of coffee per litre, water just off the boil, and a slow spiral pour; the whole "
     "brew should take three to four minutes."),
    ("h_k8s_service", "Kubernetes services",
     "A Service gives a stable name and address to a changing set of pods selected by labels and load-balances traffic "
     "between them; ClusterIP, NodePort and LoadBalancer expose it differently."),
    ("h_iterators", "Python list comprehensions",
     "A list comprehension builds a whole list in memory in one expression, such as [x * x for x in range(10)], optionally "
     "with a filter clause; it is often clearer than a loop with append."),
]

# (target key, query): intent first, then keywords, as tasks/attribute/process.py builds it
QUERIES = [
    ("sourdough", "The user wants to keep their homemade bread culture healthy. levain feeding schedule, wild yeast"),
    ("rebase", "Decide how to combine a feature branch without a messy history. linear history, replay commits"),
    ("budget", "Divide monthly salary between essentials, fun and savings. personal finance, spending percentages"),
    ("exposure", "Understand why photos come out too dark or blurry. camera settings, ISO noise, shutter"),
    ("regression", "Fit a trend line to data and interpret it. least squares, slope, R squared"),
    ("tcp", "Explain how two computers set up a reliable connection. SYN ACK, networking"),
    ("photosynthesis", "Explain how plants turn sunlight into food. chloroplast, Calvin cycle"),
    ("compost", "Turn kitchen scraps into soil at home. greens and browns, decomposition"),
    ("marathon", "Prepare to run 42 kilometres for the first time. long run, taper, beginner schedule"),
    ("interest", "See how savings grow over decades. rule of 72, doubling money"),
    ("vaccines", "Understand how the new covid shots work. messenger RNA, spike protein, immunity"),
    ("sql_window", "Rank rows inside groups in a database query. OVER PARTITION BY, running total"),
    ("rust", "Understand why the compiler rejects a second mutable reference. borrow checker, ownership"),
    ("espresso", "Fix a sour coffee shot from the machine. grind size, extraction time"),
    ("tides", "Explain why the ocean rises and falls twice a day. Moon gravity, spring tide"),
    ("kubernetes", "Run several copies of a container and update them safely. replicas, rolling update, pod"),
    ("sleep", "Fall asleep faster and wake up rested. insomnia tips, caffeine, bedtime routine"),
    ("roman", "Explain why Rome collapsed in the west. Odoacer, 476, barbarian migrations"),
    ("guitar", "Play the F chord without buzzing strings. index finger across the fret"),
    ("resume", "Get more callbacks from job applications. CV, applicant tracking system, achievements"),
    ("blackhole", "Explain the point of no return around a collapsed star. Schwarzschild radius, light cannot escape"),
    ("knitting", "Start the first row of a scarf. long-tail cast-on, slip knot"),
    ("regex", "Match phone numbers in text with a pattern. digits, anchors, capture groups"),
    ("inflation", "Understand why prices keep going up. cost of living, central bank rates"),
    ("chess", "Play the first moves of a game well. develop pieces, castle, centre control"),
    ("houseplants", "Save a swiss cheese plant with yellow leaves. overwatering, indirect light"),
    ("docker", "Make container images smaller and builds faster. multi-stage build, layer cache"),
    ("vitamin_d", "Decide whether to take supplements in the dark months. UVB, winter, deficiency"),
    ("negotiation", "Ask for more money after a job offer. counteroffer, market range, anchoring"),
    ("bees", "Explain what farms would lose without pollinators. almonds, honeybees"),
    ("pythongen", "Process a huge log file without running out of memory in Python. yield, lazy iteration"),
    ("earthquake", "Compare how strong two earthquakes were. magnitude scale, seismometer"),
    # terse queries, as a small model often writes them: a vague intent, two or three keywords
    ("sourdough", "Baking help. starter, discard"),
    ("rebase", "Git question. rebase"),
    ("exposure", "Photography. shutter speed"),
    ("regression", "Statistics homework. residuals"),
    ("tcp", "Networking. handshake"),
    ("photosynthesis", "Biology. light energy, oxygen"),
    ("interest", "Money question. compounding"),
    ("sql_window", "SQL help. ROW_NUMBER"),
    ("rust", "Programming. ownership, scope"),
    ("espresso", "Coffee. 18 grams, shot"),
    ("kubernetes", "DevOps. deployment"),
    ("roman", "History. Romulus Augustulus"),
    ("blackhole", "Physics. event horizon"),
    ("docker", "Containers. Dockerfile"),
    ("pythongen", "Python. generator"),
    ("vaccines", "Health. lipid nanoparticles"),
]


def recall_at_1(ranked_keys: list[str]) -> float:
    """Share of QUERIES whose top-ranked document key (same order as QUERIES) is the target."""
    return sum(top == target for top, (target, _) in zip(ranked_keys, QUERIES)) / len(QUERIES)


def evaluate(lake_dir: str, modes=("dense", "bm25", "hybrid"), embedder: str = "bundled", index=None) -> dict[str, float]:
    """recall@1 per mode, through the stage's own code: DOCUMENTS written to a lake, both
    indexes built by `build_index` (the dense one as `index`, an IndexConfig, says), each query
    retrieved by `corpus_documents`."""
    from datetime import datetime, timezone

    from synthq.tasks.attribute.grounding import corpus_documents, prepare
    from synthq.tasks.attribute.retrieve import build_index, load_index
    from synthq.tasks.core.config import FactoryConfig
    from synthq.tasks.shards.context import StageContext
    from synthq.tasks.core.lake import Lake, StageResult
    from synthq.tasks.core.records import DOCUMENTS as SCHEMA, REJECTED, table

    lake = Lake(lake_dir)
    now = datetime.now(timezone.utc)
    rows = [{"id": key, "url": f"https://example.org/{key}", "title": title, "text": text, "language": "en",
             "language_score": 1.0, "date": "", "source": "retrieval_set", "source_offset": i, "fetch_time": now,
             "n_words": len(text.split()), "search_query": None} for i, (key, title, text) in enumerate(DOCUMENTS)]
    lake.write_shard("documents", "00000", StageResult(table(rows, SCHEMA), table([], REJECTED)), input_id="set", config="set")
    build_index(lake, embedder, "hybrid", index)
    index, ids = load_index(lake)
    out = {}
    for mode in modes:
        cfg = FactoryConfig(lake=lake_dir, embedder=embedder, attribute={"retrieval": mode})
        ctx = StageContext(cfg=cfg, lake=lake, extras={"index": index, "index_ids": ids})
        prepare(ctx)
        pairs = [({"id": str(n), "prompt": q}, None) for n, (_, q) in enumerate(QUERIES)]
        found = corpus_documents(ctx, pairs, [q for _, q in QUERIES], mode)
        top = {seed["id"]: doc_id for (seed, _), (doc_id, _) in zip(found.kept, found.hits)}
        out[mode] = recall_at_1([top.get(str(n), "") for n in range(len(QUERIES))])
    return out
