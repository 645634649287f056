// Internals of the concrete ProgramManager (docs/program-manager.md), shared
// by its parts:
//   program_manager.cc  create/init, load, unload, listing, trust
//   pm_hooks.cc         the hook table: one row per hook kind
//   pm_chain.cc         the per-interface XDP tail-call chain
//   pm_pins.cc          pins, the metadata record (journal), adoption and recovery
//   pm_replace.cc       replace
// Not a public header: only src/core/pm_*.cc and program_manager.cc include it.
#pragma once

#include <functional>
#include <memory>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bpf/hooks.h"
#include "bpf/kernel.h"
#include "bpf/object.h"
#include "core/program_manager.h"
#include "kagami/abi/xdp_chain.h"

namespace kagami::core::pm {

using json = nlohmann::json;

inline constexpr const char* kChainMap = KAGAMI_XDP_CHAIN_MAP;
inline constexpr const char* kChainSlotMap = KAGAMI_XDP_CHAIN_SLOT_SECTION;
inline constexpr int kChainSlots = KAGAMI_XDP_CHAIN_SLOTS;
inline constexpr const char* kChainNextMap = KAGAMI_XDP_CHAIN_NEXT_MAP;
// bpffs refuses names containing '.', so pins use '_' (libbpf does the same
// for .rodata & co) and the chain directory, like the metadata record, uses
// a leading '_' that program names may not have.
inline constexpr const char* kChainDir = "_xdp_chain";
inline constexpr const char* kMetaPin = "meta";
// Staging directory of a replace in progress (new pins before the commit).
inline constexpr const char* kNextDir = "next";
// meta.json lives in a pinned one-entry array map (pin "meta"): bpffs holds only BPF
// objects, and keeping the record beside the pins means it can never
// disagree with them about existence.
inline constexpr uint32_t kMetaSize = 32768;

// Journal states of the metadata record (docs/program-manager.md, "Crash
// consistency"). A restart finishes or undoes whatever is not Complete.
inline constexpr const char* kComplete = "complete";
inline constexpr const char* kLoading = "loading";        // undone at adoption
inline constexpr const char* kUnloading = "unloading";    // finished at adoption
inline constexpr const char* kReplacing = "replacing";    // undone at adoption
inline constexpr const char* kCommitting = "committing";  // finished at adoption

// Collects undo steps; runs them in reverse unless commit() was called.
class Undo {
 public:
  ~Undo() {
    for (auto it = steps_.rbegin(); it != steps_.rend(); ++it) (*it)();
  }
  void add(std::function<void()> f) { steps_.push_back(std::move(f)); }
  void commit() { steps_.clear(); }

 private:
  std::vector<std::function<void()>> steps_;
};

// How a hook keeps running without the process, and how it is found again.
enum class Mech {
  Link,      // a bpf_link, pinned at links/<i>
  Tc,        // a netlink TC filter, found by (ifindex, direction, handle, priority)
  XdpChain,  // a slot of the interface's XDP chain prog_array
};

// How replace() swaps a hook to the new version.
enum class Swap {
  LinkUpdate,  // bpf_link_update: atomic
  NewLink,     // attach the new version next to the old one, detach the old at commit
  TcReplace,   // BPF_TC_F_REPLACE on the same handle/priority: atomic
  ChainSlot,   // one prog_array update: atomic
};

struct Attachment {
  AttachPoint point;
  std::string program;
  Mech mech = Mech::Link;
  std::string mechanism;   // for listings
  Fd link;                 // Mech::Link
  std::string link_pin;    // relative to the entry dir: "links/0"
  bpf::TcFilter tc;        // Mech::Tc
  int chain_slot = -1;     // Mech::XdpChain (interface: point.target)
};

struct Entry {
  std::string name, label, source, sha256;
  bool builtin = false, adopted = false;
  uint32_t generation = 1;
  int64_t loaded_at = 0;
  std::string state = kComplete;
  std::map<std::string, Fd> progs;
  std::map<std::string, Fd> maps;
  std::vector<Attachment> atts;
  Fd meta;
};

// What listings read without the manager's lock (a load can hold it for
// seconds while the verifier runs): published after every change.
struct Listed {
  std::string name, label, sha256;
  bool builtin = false, adopted = false;
  uint32_t generation = 1;
  std::vector<std::pair<std::string, std::shared_ptr<Fd>>> progs, maps;
  std::vector<AttachmentInfo> attachments;
};
using Listing = std::map<std::string, Listed>;

struct Chain {
  std::string ifname;
  int ifindex = 0;
  bool native = false;
  Fd root;   // root program
  Fd link;   // XDP link of the root
  Fd slots;  // prog_array
  Fd next;   // the "next slot" table (invalid for a chain built before it)
};

// What attaching one point produced (the row's attach function).
struct Attached {
  Mech mech = Mech::Link;
  Fd link;
  bpf::TcFilter tc;
  std::string mechanism;
};

// One row per hook kind: adding a hook (LSM, fentry, kprobe, tcx) means
// adding a row here (and its AttachPoint::Kind), nothing else.
struct HookRow {
  AttachPoint::Kind kind;
  const char* name;                          // "xdp", "tc", ... (as in the attach spec)
  bool (*accepts)(uint32_t prog_type);       // which program types fit
  // The target exists and suits the hook (interface, cgroup v2, map, binary).
  Result<void> (*check_target)(const AttachPoint&, const bpf::Object&);
  // Before load: expected attach type, BTF target ... (nullptr: nothing).
  Result<void> (*prepare)(bpf::Object&, const AttachPoint&, const std::string& prog);
  // Attach the loaded program (XDP direct mode here; chain slots are the
  // manager's, see pm_chain.cc).
  Result<Attached> (*attach)(const bpf::Object&, const AttachPoint&, const std::string& prog);
  Swap swap;   // how replace swaps it (sk_msg: LinkUpdate only when the sockmap is reused)
  Mech pin;    // how it persists: pinned link, TC record or chain slot
};

const HookRow& hook_row(AttachPoint::Kind k);
// The loaded object's program for a point: by name, or the only one whose
// type fits the hook.
Result<bpf::ProgDesc> pick_program(const bpf::Object& obj, const AttachPoint& p);
std::string hook_kind_name(const AttachPoint& p);

std::string pin_name(std::string n);
std::string basename_of(const std::string& p);
std::string layout(const bpf::MapDesc& m);
std::string layout(const bpf::KMapInfo& m);

class Manager final : public ProgramManager {
 public:
  explicit Manager(ManagerOptions opts) : opts_(std::move(opts)) {}
  ~Manager() override = default;  // fds close; pinned programs keep running

  Result<void> init();

  Result<ProgramInfo> load(const LoadRequest& req) override;
  Result<ProgramInfo> replace(const std::string& name, const LoadRequest& req) override;
  Result<void> unload(const std::string& name) override;
  std::vector<ProgramInfo> list() const override;
  Result<ProgramInfo> get(const std::string& name) const override;
  Result<Fd> map_fd(const std::string& name, const std::string& map) const override;
  std::vector<std::string> adoption_errors() const override;
  Result<std::vector<StatsSample>> sample_stats(std::chrono::milliseconds window) const override;
  const ManagerOptions& options() const override { return opts_; }

 private:
  std::string dir(const std::string& name) const { return opts_.pin_root + "/" + name; }
  std::string chain_dir(const std::string& ifname) const {
    return opts_.pin_root + "/" + kChainDir + "/" + ifname;
  }

  // Reuses the maps of a loaded program (LoadRequest::share_maps_with).
  Result<void> share_maps(bpf::Object& obj, const std::string& owner) const;
  Result<ProgramInfo> load_locked(const LoadRequest& req);
  Result<ProgramInfo> replace_locked(const std::string& name, const LoadRequest& req);
  Result<void> unload_locked(const std::string& name);

  Result<std::vector<uint8_t>> read_source(const ProgramSource& src, std::string* label) const;
  Result<bpf::Object> open_trusted(const LoadRequest& req, std::string* label, std::string* sha) const;
  Result<void> check_trust(const LoadRequest& req, const std::string& sha, const bpf::Object& obj) const;

  // XDP chain (pm_chain.cc)
  bool chain_aware(const bpf::Object& obj) const;
  Result<Chain*> get_or_create_chain(const AttachPoint& p, Undo& undo);
  Result<int> pick_slot(const std::string& ifname, int order) const;
  void maybe_destroy_chain(const std::string& ifname);
  void remove_chain_pins(const std::string& ifname);
  Result<void> adopt_chains();
  // For an XDP point: -1 (direct attach) or the chain slot to use, creating
  // the interface's chain and preparing a chain-aware object for the slot.
  Result<int> prepare_xdp(bpf::Object& obj, const AttachPoint& p, int keep_slot, Undo& undo);
  Result<void> set_chain_slot(const Attachment& a, int prog_fd, Undo* undo);

  // Attach one point whose Attachment was planned (mech, link pin, tc
  // coordinates, chain slot) and journaled; registers the undo (pm_hooks.cc).
  Result<void> attach_one(const bpf::Object& obj, Attachment& a, const Entry& e, Undo& undo);
  Result<Fd> attach_new_link(const bpf::Object& obj, const AttachPoint& p, const std::string& prog,
                             Undo& undo);
  Result<void> check_xdp_exclusive(const AttachPoint& p, const std::string& self) const;
  void detach(Entry& e, Attachment& a);

  // Pins and the journal (pm_pins.cc)
  Result<void> begin_entry(Entry& e, Undo& undo);  // dirs + meta (state loading)
  Result<void> pin_objects(Entry& e);                // maps/ and progs/
  void remove_entry_pins(const Entry& e);            // everything, meta last
  json meta_json(const Entry& e) const;
  Result<void> write_meta(Entry& e, const json* next = nullptr);
  Result<void> adopt_all();
  Result<Entry> adopt_one(const std::string& name);
  Result<Entry> entry_from_record(const std::string& name, const json& j, Fd meta);
  // Crash recovery of one record that is not complete; returns the record
  // to adopt (complete), or null when nothing is left to adopt.
  Result<json> recover(const std::string& name, json j, int meta_fd);
  void purge(const std::string& name, const json& j);
  void rollback_replace(const std::string& name, const json& j);
  void move_next_pins(const std::string& name, const json& j);

  ProgramInfo info(const Entry& e) const;
  // Publishes entries_ as the listing that list/get/map_fd read.
  void publish_locked();
  // Rewrites every chain's "next slot" table from what its prog_array holds
  // (called by publish_locked, after every change and after adoption).
  void refresh_chain_tables();
  std::shared_ptr<const Listing> listing() const;

  ManagerOptions opts_;
  mutable std::mutex mu_;
  std::map<std::string, Entry> entries_;
  std::map<std::string, Chain> chains_;  // by interface name
  std::vector<std::string> adoption_errors_;
  Fd stats_;
  mutable std::mutex listing_mu_;  // guards listing_ (the pointer only)
  std::shared_ptr<const Listing> listing_ = std::make_shared<Listing>();
};

// Record <-> entry helpers shared by replace and recovery.
json apply_next(json rec);  // the record a finished replace leaves (generation + 1)
Result<void> write_record(int meta_fd, const json& j);

}  // namespace kagami::core::pm
