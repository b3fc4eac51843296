// Common English nicknames and short forms, each mapped to the given name it usually stands for.
// Used by the normaliser to fill `givenNameCanonical` (bill → william), which the matcher compares
// at its own level, below an exact match of the given name as written.

const TABLE: Record<string, readonly string[]> = {
  abigail: ['abby', 'abbie', 'gail'],
  albert: ['al', 'bert', 'bertie'],
  alexander: ['alex', 'alec', 'sandy', 'xander', 'lex'],
  alexandra: ['alexa', 'lexie', 'sasha', 'sandra'],
  alfred: ['alf', 'alfie', 'fred', 'freddie'],
  andrew: ['andy', 'drew'],
  anthony: ['tony', 'ant'],
  barbara: ['barb', 'babs'],
  benjamin: ['ben', 'benny', 'benji'],
  bradley: ['brad'],
  catherine: ['cathy', 'cath', 'kate', 'katie', 'kathy', 'kat', 'katherine', 'kathryn'],
  charles: ['charlie', 'chuck', 'chas'],
  charlotte: ['lottie', 'charlie'],
  christina: ['chris', 'tina', 'christine'],
  christopher: ['chris', 'kit', 'topher'],
  daniel: ['dan', 'danny'],
  david: ['dave', 'davy', 'davey'],
  deborah: ['deb', 'debbie', 'debby', 'debra'],
  dominic: ['dom'],
  donald: ['don', 'donny'],
  dorothy: ['dot', 'dottie', 'dolly'],
  douglas: ['doug'],
  edward: ['ed', 'eddie', 'ned', 'ted', 'teddy'],
  elizabeth: [
    'liz',
    'lizzie',
    'beth',
    'betty',
    'bette',
    'eliza',
    'libby',
    'lisa',
    'elsie',
    'betsy',
  ],
  emily: ['em', 'emmy', 'millie'],
  frances: ['fran', 'frankie'],
  francis: ['frank', 'fran'],
  frederick: ['fred', 'freddie', 'freddy'],
  gabriel: ['gabe'],
  gabrielle: ['gabby', 'gabi'],
  geoffrey: ['geoff', 'jeff', 'jeffrey'],
  gerald: ['gerry', 'jerry'],
  gregory: ['greg'],
  harold: ['harry', 'hal'],
  henry: ['harry', 'hank', 'hal'],
  isabella: ['bella', 'izzy', 'isabel', 'isabelle'],
  jacob: ['jake'],
  james: ['jim', 'jimmy', 'jamie', 'jimbo'],
  jennifer: ['jen', 'jenny', 'jenn'],
  jessica: ['jess', 'jessie'],
  john: ['jack', 'johnny', 'jon'],
  jonathan: ['jon', 'jonny', 'johnny'],
  joseph: ['joe', 'joey', 'jo'],
  joshua: ['josh'],
  judith: ['judy', 'jude'],
  kenneth: ['ken', 'kenny'],
  lawrence: ['larry', 'laurie', 'lawrie'],
  leonard: ['len', 'lenny', 'leo'],
  madeleine: ['maddie', 'maddy', 'madeline'],
  margaret: ['maggie', 'meg', 'peggy', 'marge', 'margie', 'greta', 'madge'],
  matthew: ['matt', 'matty'],
  michael: ['mike', 'mick', 'mickey', 'micky', 'mikey'],
  nathan: ['nate', 'nat'],
  nathaniel: ['nate', 'nat', 'nathan'],
  nicholas: ['nick', 'nicky', 'nic'],
  nicola: ['nicky', 'nikki'],
  oliver: ['ollie', 'olly'],
  pamela: ['pam'],
  patricia: ['pat', 'patty', 'trish', 'tricia'],
  patrick: ['pat', 'paddy'],
  peter: ['pete'],
  philip: ['phil', 'phillip', 'pip'],
  rebecca: ['becky', 'becca', 'bec'],
  richard: ['rich', 'rick', 'ricky', 'dick', 'richie'],
  robert: ['rob', 'robbie', 'bob', 'bobby', 'bert'],
  ronald: ['ron', 'ronnie'],
  rosemary: ['rose', 'rosie'],
  samantha: ['sam', 'sammy'],
  samuel: ['sam', 'sammy'],
  sarah: ['sara', 'sally', 'sadie'],
  stephanie: ['steph', 'stephy'],
  stephen: ['steve', 'stevie', 'steven'],
  susan: ['sue', 'susie', 'suzy', 'suzanne'],
  theodore: ['theo', 'ted', 'teddy'],
  thomas: ['tom', 'tommy'],
  timothy: ['tim', 'timmy'],
  victoria: ['vicky', 'vicki', 'tori'],
  vincent: ['vince', 'vinnie'],
  walter: ['walt', 'wally'],
  william: ['will', 'bill', 'billy', 'willy', 'willie', 'liam'],
  zachary: ['zach', 'zack'],
};

function invert(table: Record<string, readonly string[]>): Map<string, string> {
  const out = new Map<string, string>();
  for (const [canonical, nicknames] of Object.entries(table)) {
    for (const n of nicknames) {
      // A short form shared by two names (chris, sam, pat …) keeps its first entry.
      if (!out.has(n) && !(n in table)) out.set(n, canonical);
    }
  }
  return out;
}

const NICKNAMES = invert(TABLE);

/** The given name a nickname stands for (`bill` → `william`); the name itself otherwise. */
export function canonicalGivenName(normalisedName: string): string {
  return NICKNAMES.get(normalisedName) ?? normalisedName;
}

/** Number of nicknames the table knows (for tests and docs). */
export const NICKNAME_COUNT = NICKNAMES.size;
